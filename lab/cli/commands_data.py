"""`lab data`: fetch or take a CSV, check it and register a dataset version."""

from __future__ import annotations

import click

from lab import data as lab_data


@click.command("data")
@click.option("--path", "path", type=click.Path(dir_okay=True), help="Local CSV to register instead of downloading.")
@click.option("--url", help="Download the CSV from this URL instead of the official Bank Marketing address.")
@click.option("--name", default=lab_data.DEFAULT_DATASET_NAME, show_default=True, help="Dataset name.")
@click.option("--label", default=lab_data.DEFAULT_LABEL, show_default=True, help="Label (target) column.")
@click.option("--sha256", help="Expected sha256 of the file (checked automatically for the official file).")
@click.pass_obj
def data_command(workspace, path, url, name, label, sha256):
    """Register a dataset version from a CSV with a header row and a label column.

    Without --path or --url, takes bankmarketing_train.csv from $LAB_DATA_DIR if set, otherwise
    downloads it from Azure's sample-data address into the cache ($LAB_CACHE_DIR, default
    ~/.cache/azureml-ops-lab) and verifies its sha256.
    """
    source = lab_data.resolve_source(path, url)
    asset = lab_data.register_dataset(workspace, source, name=name, label=label, expected_sha256=sha256,
                                      source=url or str(source))
    print_dataset(asset)


def print_dataset(asset) -> None:
    manifest = asset.manifest
    balance = ", ".join(f"{key}={count}" for key, count in manifest["class_balance"].items())
    click.echo(f"registered dataset {asset.ref}")
    click.echo(f"  source   {manifest['source']}")
    click.echo(f"  sha256   {manifest['sha256']}")
    click.echo(f"  rows     {manifest['rows']}, {manifest['columns']} feature columns, label {manifest['label']!r}")
    click.echo(f"  classes  {balance} (minority share {manifest['minority_share']:.2%})")


def register(cli: click.Group) -> None:
    cli.add_command(data_command)
