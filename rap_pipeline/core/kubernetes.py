"""What the pipeline asks of Kubernetes when it runs there (deploy/kubernetes/): the pod of
each heavy step. Read by dagster-k8s's k8s_job_executor (RAP_EXECUTOR=k8s); ignored when
steps run in process."""

from __future__ import annotations

from typing import Any


def step_resources(cpu: str, memory: str, memory_limit: str) -> dict[str, Any]:
    """``op_tags`` giving a step's pod these requests (and a memory limit)."""
    return {
        "dagster-k8s/config": {
            "container_config": {
                "resources": {
                    "requests": {"cpu": cpu, "memory": memory},
                    "limits": {"memory": memory_limit},
                }
            }
        }
    }


# a sentence-transformers or transformers model in memory (a run's partitions use it in turn)
MODEL_STEP = step_resources(cpu="1", memory="2Gi", memory_limit="4Gi")


def executor(kind: str):
    """The code location's executor: in process (a step costs ~20 ms, the default), or one
    Kubernetes pod per step, so a run's steps spread over the cluster's nodes."""
    import dagster as dg

    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return dg.in_process_executor
