"""GIO on Spark: K-Means (pyspark.ml) and nearest-centroid assignment (the gio_rs kernel inside
the partitions, through Arrow) run on the executors; the selection among centroids runs on the
driver with `gio_rs.select`; the chosen clusters come back as a join on the cluster id.
`method="ratio"` is the density-ratio selection instead: pool statistics and scores computed in
the partitions, the model fitted on the driver, an exact global top-B (`select_ratio`).

    import gio_rs.spark as gs
    spark = gs.session("local[*]")
    train = gs.read_parquet(spark, "pool/")          # row_id, <other columns>, features
    target = gs.read_parquet(spark, "target/")
    result = gs.select(train, target, n_clusters=1000, seed=0)
    result.write_parquet("selected/")                 # the selected rows, all columns + cluster
    result.selection.kl_trace                         # the driver-side gio_rs.Selection
    gs.select(train, target, method="ratio", budget_rows=10_000, seed=0).write_parquet("ratio/")

Needs `pip install gio_rs[spark]` (pyspark with pyarrow and pandas). `import gio_rs` never
imports this module.
"""

from typing import Any, Union

from .._core import GioError
from .engine import ROW_ID as ROW_ID
from .engine import (
    SparkSelection,
    assign,
    explode,
    quantize,
    read_parquet,
    read_reference_tsv,
    session,
    validate_features,
)
from .engine import select as select_clusters
from .ratio import SparkRatioSelection, select_ratio

__all__ = [
    "SparkRatioSelection", "SparkSelection", "assign", "explode", "quantize", "read_parquet",
    "read_reference_tsv", "select", "select_clusters", "select_ratio", "session", "validate_features",
]  # fmt: skip

# select(method="ratio")'s options and the names select_ratio gives them.
_RATIO_OPTIONS = {
    "budget_rows": "budget_rows", "ratio_estimator": "estimator", "ratio_mode": "mode", "seed": "seed",
    "init_df": "init_df", "features_col": "features_col", "id_col": "id_col", "score_col": "score_col",
    "validate": "validate",
}  # fmt: skip


def select(train_df: Any, target_df: Any, **options: Any) -> Union[SparkSelection, SparkRatioSelection]:
    """GIO at scale on Spark, by `method` as `gio_rs.select`.

    `method="ratio"` (needs `budget_rows`; also `ratio_estimator`, `ratio_mode`, `seed`,
    `init_df`, `features_col`, `id_col`, `score_col`, `validate`): the density-ratio selection,
    `select_ratio`, which returns a `SparkRatioSelection` whose rows are exactly those of
    `gio_rs.select(method="ratio")` on the same data. Any other method: quantise → select among
    centroids → explode (`select_clusters`, every option documented there), a `SparkSelection`.
    """
    if options.get("method") != "ratio":
        return select_clusters(train_df, target_df, **options)
    unused = sorted(set(options) - set(_RATIO_OPTIONS) - {"method"})
    if unused:
        raise GioError(f"{unused[0]}: not used by method='ratio' on Spark")
    if options.get("budget_rows") is None:
        raise GioError("budget_rows: required with method='ratio' (the rows to select)")
    kwargs = {_RATIO_OPTIONS[k]: v for k, v in options.items() if k != "method"}
    return select_ratio(train_df, target_df, **kwargs)
