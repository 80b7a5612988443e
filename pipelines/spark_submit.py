"""Run a corpusforge config on Spark:

    spark-submit [--master spark://HOST:7077] [--conf k=v ...] pipelines/spark_submit.py CONFIG.yaml
        [--resume] [--overwrite] [--set KEY=VALUE ...]

Spark settings come from spark-submit as usual (master, executors, memory, conf). Executors need
corpusforge installed (build a wheel and `pip install` it on every node, or ship a packed virtualenv
with `--archives`; see docs/engines.md). The output folder must be visible to every executor.
"""

import sys

from corpusforge.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:], "--engine", "spark"]))
