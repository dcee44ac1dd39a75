"""`varstruct datasets`: list the registered datasets with their factors."""
from __future__ import annotations

from .common import app, console


@app.command("datasets")
def datasets_cmd():
    """List every dataset with its factors (name, size, type) and image shape."""
    from rich.table import Table

    from .. import data

    table = Table(title="varstruct datasets")
    for col in ("dataset", "image (HxWxC)", "factors (name: size type)"):
        table.add_column(col)
    for name in data.names():
        ds = data.get(name)
        facs = ", ".join(f"{f.name}: {f.size} {f.type}" for f in ds.factors)
        table.add_row(name, "x".join(map(str, ds.image_shape)), facs)
    console.print(table)
