"""The one vocabulary of task names, shared by model cards, datasets, ``--task`` and run folders.

Model cards and dataset specs are plain literals (the registry reads them without importing anything), so they
spell these strings out; ``tests/tasks/test_names.py`` checks that every registered card and dataset uses one
of them.
"""

# What a model card says a model does (``MODEL_CARD["task"]``), and what ``--task`` may ask for.
IMAGE_CLASSIFICATION = "image_classification"
SEQUENCE_CLASSIFICATION = "sequence_classification"  # images read row by row by a sequence model
LANGUAGE_MODEL = "lm"
METRIC_LEARNING = "metric_learning"
TRANSLATION = "translation"  # an encoder-decoder: source sentences to target sentences
CAPTIONING = "captioning"  # an image to a caption
TEXT_CLASSIFICATION = "text_classification"  # labelled texts, read as tokens by a sequence classifier
MODEL_TASKS = (IMAGE_CLASSIFICATION, SEQUENCE_CLASSIFICATION, LANGUAGE_MODEL, METRIC_LEARNING, TRANSLATION,
               CAPTIONING, TEXT_CLASSIFICATION)

# What a dataset holds (``Dataset.task``).
TEXT = "text"
DATASET_TASKS = (IMAGE_CLASSIFICATION, TEXT, TRANSLATION, TEXT_CLASSIFICATION, CAPTIONING)

# What a run trained (``task_kind`` in its ``config.yaml``): image and sequence classification train alike.
CLASSIFICATION = "classification"
RUN_TASKS = (CLASSIFICATION, LANGUAGE_MODEL, METRIC_LEARNING, TRANSLATION, CAPTIONING, TEXT_CLASSIFICATION)
