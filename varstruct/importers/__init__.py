"""Importers of models trained elsewhere (docs/importing.md).

- :mod:`.dlib`: disentanglement_lib's released models (TF-Hub modules in zips) as run dirs;
- :mod:`.tfbundle`: TensorFlow's checkpoint (tensor bundle) format read with numpy alone;
- :mod:`.crc32c`: the CRC-32C that format is checked with;
- :mod:`.ginfile`: gin config files parsed as text.

Nothing here imports TensorFlow, and nothing read from a source is unpickled or executed.
"""
