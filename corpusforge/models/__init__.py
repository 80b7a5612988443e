"""Model filters' shared pieces: Chinese featurization, the fastText spam classifier, the GPT-3-style
hashed-feature logistic-regression quality scorer, and their training/evaluation."""
