"""An out-of-tree GENRE plugin used by the tests: one new model, dataset reader, feature extractor and publish
target, each one class plus its config section, registered with the same decorator the built-ins use. Nothing
under genre_core/ knows about it; a config selects it with ``plugins: [genre_testplugin]``.
"""
from genre_testplugin import features, model, reader, target  # noqa: F401 - importing registers the classes
