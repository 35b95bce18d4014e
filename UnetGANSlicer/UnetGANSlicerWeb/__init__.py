"""UnetGANSlicer in a web page (trame-slicer): load a cine, Adapt & Segment, correct, measure, save.

Start it with ``unetgan web [--host 127.0.0.1] [--port N] [--output-dir DIR] [INPUT]``
(or ``python -m UnetGANSlicerWeb ...``). The page uses the MRML layer
(``UnetGANSlicerLib``) for everything it shows; see ``app.py`` (layout),
``controller.py`` (state and actions), ``paths.py`` (what may be uploaded, read and written).
"""
