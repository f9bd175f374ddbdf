"""Entry point of the Dataflow flex template: template parameters in, `mrt run` out.

Dataflow hands a flex template its parameters as `--name=value` arguments mixed with pipeline options
(runner, project, region, temp_location, sdk_container_image, ...). Parameters that are `mrt run`
options go to mrt; everything else goes to Beam after `--`. `input` may list several patterns,
comma-separated, since a template parameter is one string.
"""

from __future__ import annotations

import json
import sys

from mrtcurate import cli
from mrtcurate.cli.options import is_switch, template_metadata
from mrtcurate.schemas.config import OPTIONS


def split_template_args(argv: list[str]) -> tuple[list[str], list[str]]:
    ours, beam = [], []
    for argument in argv:
        name, _, value = argument.lstrip("-").partition("=")
        option = OPTIONS.get(name.replace("-", "_")) if argument.startswith("--") else None
        if option is not None:
            if name == "input":
                ours += [f"--input={pattern.strip()}" for pattern in value.split(",") if pattern.strip()]
            elif value.lower() in ("true", "false") and is_switch(option):
                ours += [f"--{name}"] if value.lower() == "true" else ([f"--no-{name}"] if option.info.default else [])
            else:
                ours.append(f"--{name.replace('_', '-')}={value}")
        else:
            beam.append(argument)
    return ours, beam


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--print-metadata"]:
        print(json.dumps(template_metadata(), indent=2))
        return 0
    ours, beam = split_template_args(argv)
    return cli.main(["run", *ours, "--", *beam])


if __name__ == "__main__":
    sys.exit(main())
