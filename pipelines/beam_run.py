"""Run a corpusforge config on Apache Beam:

    python pipelines/beam_run.py CONFIG.yaml [--resume] [--overwrite] [--set KEY=VALUE ...] \
        [-- --runner=FlinkRunner --flink_master=HOST:8081 --environment_type=LOOPBACK ...]

Everything after `--` is Beam PipelineOptions (runner, project, region, temp_location, ...). Without a
runner it uses the DirectRunner in multi-processing mode with engine.workers processes.
"""

import sys

from corpusforge.cli import main


def argv(args: list[str]) -> list[str]:
    own, beam_args = (args[: args.index("--")], args[args.index("--") + 1:]) if "--" in args else (args, [])
    opts = []
    for a in beam_args:  # --key=value / --flag → engine.options entries
        opts += ["--engine-opt", a[2:] if "=" in a else a[2:] + "="]
    return ["run", *own, "--engine", "beam", *opts]


if __name__ == "__main__":
    sys.exit(main(argv(sys.argv[1:])))
