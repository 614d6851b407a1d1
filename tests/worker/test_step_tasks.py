"""The round loop sends each step by task name; worker/tasks/ must register every one of those names."""

import pytest

from annotator.rounds.step_tasks import GPU_QUEUE, GPU_STEP_TASKS, MODEL_FREE_STEP_TASKS
from config.celery import app


@pytest.mark.parametrize("step, task", [*GPU_STEP_TASKS.items(), *MODEL_FREE_STEP_TASKS.items()])
def test_every_step_task_name_is_registered_and_routed_to_its_queue(step, task):
    import worker.tasks  # noqa: F401  - what the worker's autodiscovery imports

    assert task.name in app.tasks, f"no Celery task named {task.name!r} for step {step}"
    routed = app.amqp.router.route({}, task.name).get("queue")
    assert routed is None or routed.name == task.queue  # CELERY_TASK_ROUTES agrees with where it is sent
    if task.queue == GPU_QUEUE:
        assert routed is not None and app.tasks[task.name].acks_late
