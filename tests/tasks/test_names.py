"""One vocabulary of task names: model cards, datasets, the task table and run folders all use it."""

import kzoo
from kzoo.data import dataset_info, list_datasets
from kzoo.tasks import TASKS, names


def test_every_model_card_names_a_known_task():
    for model in kzoo.list_models():
        assert kzoo.model_info(model)["task"] in names.MODEL_TASKS, model


def test_every_dataset_holds_a_known_kind():
    for dataset in list_datasets():
        assert dataset_info(dataset)["task"] in names.DATASET_TASKS, dataset


def test_every_model_task_has_a_trainer_and_every_trainer_a_run_name():
    assert set(TASKS) == set(names.MODEL_TASKS)
    assert {task.name for task in TASKS.values()} == set(names.RUN_TASKS)
