"""The ``lab`` command: a thin layer over the ``lab`` Python API.

Each command group lives in its own module; this module only builds the root group, maps
``LabError`` to its exit code, and registers the groups. ``lab cloud`` imports the Azure SDK only
when one of its commands runs.
"""

from __future__ import annotations

import logging
import sys

import click

from lab.errors import LabError

logger = logging.getLogger("lab")


class LabGroup(click.Group):
    """A click group that prints ``LabError`` as one line and exits with its code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LabError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing half-written was registered", err=True)
            sys.exit(130)


@click.group(cls=LabGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--workspace",
    envvar="LAB_WORKSPACE",
    default=".lab",
    show_default=True,
    help="Workspace folder for datasets, models, runs and services (env LAB_WORKSPACE).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="azureml-ops-lab")
@click.pass_context
def cli(ctx: click.Context, workspace: str, verbose: int) -> None:
    """Register data, run AutoML, deploy a key-protected scoring service, consume and load-test it,
    and run training pipelines: locally by default, or in Azure with `lab cloud`."""
    from lab.workspace import Workspace

    if verbose == 0:
        level = logging.WARNING
    elif verbose == 1:
        level = logging.INFO
    else:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Workspace(workspace)


def _register_commands() -> None:
    from lab.cli import (
        commands_client,
        commands_cloud,
        commands_data,
        commands_pipeline,
        commands_run,
        commands_serve,
        commands_train,
    )

    modules = (commands_data, commands_train, commands_serve, commands_client, commands_pipeline,
               commands_run, commands_cloud)
    for module in modules:
        module.register(cli)


_register_commands()


def main() -> None:
    cli(prog_name="lab")
