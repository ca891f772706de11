"""A run's tables (numpy structured arrays) and summary written as CSV or Parquet files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_csv", "write_parquet"]


def write_csv(directory, tables: dict, summary: dict) -> list[Path]:
    """Write each ``{name: structured array}`` as ``name.csv`` (a header row of field names,
    integers as integers, floats to 10 significant digits) and ``summary`` as ``summary.csv``
    (key,value rows) into ``directory``, made if missing; return the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in tables.items():
        path = out / f"{name}.csv"
        np.savetxt(path, table, delimiter=",", header=",".join(table.dtype.names),
                   comments="", fmt=[_fmt(table.dtype[n]) for n in table.dtype.names])
        paths.append(path)
    path = out / "summary.csv"
    path.write_text("key,value\n" + "".join(f"{k},{_csv_cell(v)}\n" for k, v in summary.items()))
    paths.append(path)
    return paths


def write_parquet(directory, tables: dict) -> list[Path]:
    """Write each ``{name: structured array}`` as ``name.parquet`` into ``directory`` (needs
    pyarrow); return the paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in tables.items():
        path = out / f"{name}.parquet"
        pq.write_table(pa.table({n: table[n] for n in table.dtype.names}), path)
        paths.append(path)
    return paths


def _fmt(dtype) -> str:
    return "%.10g" if dtype.kind == "f" else "%d"


def _csv_cell(value) -> str:
    text = str(value)
    # a list (liquidations_by_generation) holds commas: quote it, as CSV does
    return '"' + text.replace('"', '""') + '"' if "," in text or '"' in text else text
