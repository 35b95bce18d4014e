"""The Qt side of the Slicer module (imports ``qt``, ``ctk`` and Slicer's widgets: runs only inside Slicer).

- ``panel.py``: the module's panel, wiring the ``.ui`` widgets to ``UnetGANSlicerLib`` (whose
  ``background.BackgroundRunner`` holds the Apply/Train state machine, tested without Qt);
- ``parameters.py``: the parameter node the panel's controls are bound to;
- ``install_dialogs.py``: the questions and messages of the dependency installation;
- ``startup.py``: what the module registers when Slicer starts (the result layout, Sample Data);
- ``selftest.py``: the module's self-test (Slicer's "Reload and Test").
"""
