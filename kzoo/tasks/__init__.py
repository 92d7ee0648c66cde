"""Tasks: how a dataset becomes model inputs and targets, which loss fits, and how a model is scored.

The trainer is task-agnostic; a task object (one per run, :class:`kzoo.tasks.base.Task`) supplies training
defaults over the model's recipe, prepares the data, says how the model is built, names the loss and metrics,
evaluates on the test split and draws its plots. One module per task:

* :mod:`~kzoo.tasks.classification`: images, or images read row by row by sequence models;
* :mod:`~kzoo.tasks.language_model`: a character language model over a text (``--task lm``);
* :mod:`~kzoo.tasks.siamese`: metric learning, a Siamese network on pairs of images;
* :mod:`~kzoo.tasks.translation`: an encoder-decoder from source to target sentences (decoding in
  :mod:`~kzoo.tasks.decoding`, word vocabularies in :mod:`~kzoo.tasks.tokens`, BLEU in
  :mod:`~kzoo.tasks.text_metrics`);
* :mod:`~kzoo.tasks.captioning`: an image to a caption (the same decoding);
* :mod:`~kzoo.tasks.text_classification`: a sequence classifier given labelled texts (``--data sentiment``).

Beside them: :mod:`~kzoo.tasks.names` (the task names model cards, datasets and runs share),
:mod:`~kzoo.tasks.samplers` (token windows, image pairs, per-epoch batches) and :mod:`~kzoo.tasks.vocab`
(character vocabularies). Importing this package imports numpy only, never keras or a framework.
"""

from kzoo.errors import DataError
from kzoo.tasks import names
from kzoo.tasks.classification import ClassificationTask
from kzoo.tasks.language_model import LanguageModelTask
from kzoo.tasks.captioning import CaptioningTask
from kzoo.tasks.siamese import SiameseTask
from kzoo.tasks.text_classification import TextClassificationTask
from kzoo.tasks.translation import TranslationTask

__all__ = ["TASKS", "CaptioningTask", "ClassificationTask", "LanguageModelTask", "SiameseTask", "TextClassificationTask",
           "TranslationTask", "recipe_for", "task_class", "task_for", "task_name"]

# a model card's task (or ``--task``) -> the task that trains it
TASKS = {
    names.IMAGE_CLASSIFICATION: ClassificationTask,
    names.SEQUENCE_CLASSIFICATION: ClassificationTask,
    names.LANGUAGE_MODEL: LanguageModelTask,
    names.METRIC_LEARNING: SiameseTask,
    names.TRANSLATION: TranslationTask,
    names.CAPTIONING: CaptioningTask,
    names.TEXT_CLASSIFICATION: TextClassificationTask,  # a sequence classifier given labelled texts
}


def task_name(info, task=None, options=None, data=None):
    """The task a run trains: ``--task``, else ``lm`` for ``-o head=lm``, else ``text_classification`` for a
    sequence classifier given a text-classification dataset (or a file, or a folder of texts), else the model
    card's ``task``."""
    if task:
        return task
    if (options or {}).get("head") == "lm":
        return names.LANGUAGE_MODEL
    own = info.get("task", names.IMAGE_CLASSIFICATION)
    if own == names.SEQUENCE_CLASSIFICATION and data and _dataset_task(data) == names.TEXT_CLASSIFICATION:
        return names.TEXT_CLASSIFICATION
    return own


def _dataset_task(data):
    from kzoo.data import dataset_info
    from kzoo.data.registry import looks_like_path
    from kzoo.data.sentences import holds_texts
    from kzoo.errors import UnknownNameError

    if looks_like_path(data):
        return names.TEXT_CLASSIFICATION if holds_texts(data) else names.IMAGE_CLASSIFICATION
    try:
        return dataset_info(data).get("task")
    except UnknownNameError:  # reported with its suggestions when the dataset loads
        return None


def recipe_for(info, task=None, options=None, data=None):
    """The model's recipe with the task's defaults laid over it when the task is not the model's own."""
    recipe = dict(info.get("recipe") or {})
    name = task_name(info, task, options, data)
    if name != info.get("task") and name in TASKS:
        extra = TASKS[name].recipe
        recipe.update({k: v for k, v in extra.items() if k != "options"})
        own = info.get("options") or {}  # a model without these options is refused later, with a clear message
        recipe["options"] = {**recipe.get("options", {}),
                             **{k: v for k, v in extra.get("options", {}).items() if k in own}}
    return recipe


def task_for(info, config):
    """The task object for a model (its spec's ``task``) and the user's ``--task``."""
    name = task_name(info, config.task, config.options, config.data)
    if name not in TASKS:
        raise DataError(f"kzoo cannot train task {name!r} yet. Known tasks: {', '.join(sorted(TASKS))}.")
    return TASKS[name]()


def task_class(run_task):
    """The task class of a run's ``task_kind`` (:data:`kzoo.tasks.names.RUN_TASKS`)."""
    by_run = {task.name: task for task in TASKS.values()}
    if run_task not in by_run:
        raise DataError(f"Unknown run task {run_task!r}. Known: {', '.join(sorted(by_run))}.")
    return by_run[run_task]
