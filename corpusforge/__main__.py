from corpusforge.cli import console

raise SystemExit(console())
