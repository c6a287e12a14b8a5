"""`geoioc layers list`: the layer catalogue as a table."""

from __future__ import annotations

import typer
from rich.table import Table

from gis.cli.common import console

layers_app = typer.Typer(help="The layer catalogue.", no_args_is_help=True)


@layers_app.command("list")
def layers_list() -> None:
    """List the layers of the catalogue."""
    from layers import LAYERS

    table = Table("id", "tiêu đề / title", "bảng / table", "hình học / geometry", "truy cập / access",
                  "zoom")
    for layer in LAYERS:
        table.add_row(layer.id, f"{layer.title_vi} / {layer.title_en}", layer.table,
                      layer.geometry_type, layer.access.value, f"{layer.min_zoom}-{layer.max_zoom}")
    console.print(table)
