"""GIO on Spark: K-Means (pyspark.ml) and nearest-centroid assignment (the gio_rs kernel inside
the partitions, through Arrow) run on the executors; the selection among centroids runs on the
driver with `gio_rs.select`; the chosen clusters come back as a join on the cluster id.

    import gio_rs.spark as gs
    spark = gs.session("local[*]")
    train = gs.read_parquet(spark, "pool/")          # row_id, <other columns>, features
    target = gs.read_parquet(spark, "target/")
    result = gs.select(train, target, n_clusters=1000, seed=0)
    result.write_parquet("selected/")                 # the selected rows, all columns + cluster
    result.selection.kl_trace                         # the driver-side gio_rs.Selection

Needs `pip install gio_rs[spark]` (pyspark with pyarrow and pandas). `import gio_rs` never
imports this module.
"""

from .engine import ROW_ID as ROW_ID
from .engine import (
    SparkSelection,
    assign,
    explode,
    quantize,
    read_parquet,
    read_reference_tsv,
    select,
    session,
    validate_features,
)

__all__ = [
    "SparkSelection", "assign", "explode", "quantize", "read_parquet", "read_reference_tsv", "select",
    "session", "validate_features",
]  # fmt: skip
