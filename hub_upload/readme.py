"""Rewrite the README's model table from the registry: ``python -m hub_upload.readme [README.md]``."""

from pathlib import Path

import click

from chemzoo.loading import list_models
from chemzoo.zoo import markdown_table, rewrite_readme


@click.command()
@click.argument("readme", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=Path("README.md"))
def main(readme):
    """Regenerate the model table between the README's zoo markers."""
    changed = rewrite_readme(readme, markdown_table(list_models()))
    click.echo(f"{readme}: model table {'rewritten' if changed else 'already current'}")


if __name__ == "__main__":
    main()
