"""corpusforge: PanGu-α-style pretraining corpus pipeline over Arrow record batches."""

__version__ = "0.1.0"
