"""``from lakeforge.airflow import lakeforge_dag``: the Airflow integration (``pip install 'lakeforge[airflow]'``).

Defined in :mod:`lakeforge.integrations.airflow`; see docs/orchestrators.md."""

from lakeforge.integrations.airflow import (
    LakeforgeBuildOperator,
    LakeforgeModelOperator,
    LakeforgeRunOperator,
    LakeforgeTableOperator,
    StepRetry,
    lakeforge_dag,
    task_id,
)

__all__ = [
    "LakeforgeBuildOperator",
    "LakeforgeModelOperator",
    "LakeforgeRunOperator",
    "LakeforgeTableOperator",
    "StepRetry",
    "lakeforge_dag",
    "task_id",
]
