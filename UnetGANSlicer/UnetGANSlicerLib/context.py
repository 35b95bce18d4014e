"""The scene and the module logics the MRML layer needs, inside Slicer and outside it.

Inside the Slicer application the logics come from ``slicer.modules.<name>.logic()``.
Outside it (slicer-core in tests, trame-slicer on the web) there is no
``slicer.modules``: :func:`setup_standalone` creates the application logic, the
colour, volumes, segmentations and sequences logics on a scene, and exposes them
under ``slicer.modules`` so that ``slicer.util`` helpers that use them
(``updateSegmentBinaryLabelmapFromArray`` ...) work the same way.
"""
from __future__ import annotations

import types

import slicer

# name in slicer.modules -> (class name in slicer, name in the application logic)
_LOGIC_CLASSES = {
    "volumes": ("vtkSlicerVolumesLogic", "Volumes"),
    "segmentations": ("vtkSlicerSegmentationsModuleLogic", "Segmentations"),
    "sequences": ("vtkSlicerSequencesLogic", "Sequences"),
}

# Logics made by setup_standalone, per scene. The C++ objects only reference each other
# weakly (a scene does not own its application logic), so a caller that keeps only the
# scene would otherwise see the logics garbage-collected and slicer.util crash later.
_STANDALONE_LOGICS: dict[int, dict] = {}


def in_slicer_app() -> bool:
    """True inside the Slicer application (Qt, layout manager, module widgets)."""
    return getattr(slicer, "app", None) is not None


def scene_of(node=None):
    """The node's scene, else ``slicer.mrmlScene``."""
    scene = node.GetScene() if node is not None else None
    scene = scene or getattr(slicer, "mrmlScene", None)
    if scene is None:
        raise RuntimeError("no MRML scene: set slicer.mrmlScene (see UnetGANSlicerLib.context.setup_standalone)")
    return scene


def module_logic(name: str):
    """The logic of a core module by its ``slicer.modules`` name: volumes, segmentations, sequences."""
    modules = getattr(slicer, "modules", None)
    module = getattr(modules, name, None) if modules is not None else None
    if module is not None:
        return module.logic()
    raise RuntimeError(
        f"the {name} module logic is not available: outside Slicer call "
        "UnetGANSlicerLib.context.setup_standalone(scene) first"
    )


def setup_standalone(scene=None) -> dict:
    """Make a plain MRML scene behave like Slicer's for this layer (no Qt needed).

    Creates the application logic with default colour tables and the volumes,
    segmentations and sequences logics on ``scene`` (a new scene when None), sets
    ``slicer.mrmlScene`` and publishes the logics as ``slicer.modules.<name>.logic()``.
    Inside the Slicer application this does nothing but return the existing logics.
    Returns ``{"scene", "app_logic", "volumes", "segmentations", "sequences", "colors"}``.
    """
    if in_slicer_app():
        return {"scene": slicer.mrmlScene, **{name: module_logic(name) for name in _LOGIC_CLASSES}}
    scene = scene if scene is not None else slicer.vtkMRMLScene()
    slicer.mrmlScene = scene
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    colors = app_logic.GetColorLogic()
    colors.SetMRMLScene(scene)
    colors.AddDefaultColorNodes()
    app_logic.SetModuleLogic("Colors", colors)
    logics = {"scene": scene, "app_logic": app_logic, "colors": colors, **_data_io(scene)}
    for name, (class_name, app_name) in _LOGIC_CLASSES.items():
        logic = getattr(slicer, class_name)()
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(app_logic)
        app_logic.SetModuleLogic(app_name, logic)
        logics[name] = logic
    _STANDALONE_LOGICS[id(scene)] = logics  # lives as long as the process (or release_standalone)
    publish_logics(colors=colors, **{name: logics[name] for name in _LOGIC_CLASSES})
    return logics


def _data_io(scene) -> dict:
    """A cache and data I/O manager, as the application gives its scene (reading a bundle, e.g. a
    segmentation sequence's .seq.mrb, unpacks into the cache directory)."""
    import tempfile

    cache = slicer.vtkCacheManager()
    cache.SetRemoteCacheDirectory(tempfile.gettempdir())
    data_io = slicer.vtkDataIOManager()
    data_io.SetCacheManager(cache)
    scene.SetCacheManager(cache)
    scene.SetDataIOManager(data_io)
    return {"cache_manager": cache, "data_io_manager": data_io}


def add_views(logics: dict) -> dict:
    """Give a standalone scene the views the application makes: the layout node and view nodes (a
    vtkMRMLLayoutLogic) and one vtkMRMLSliceLogic per slice view, registered in the application logic
    (as qSlicerLayoutManager registers its slice widgets' logics). For scripts and tests that need
    slice views without Qt; :func:`remove_views` takes them away before the scene is cleared."""
    import vtk

    scene, app_logic = logics["scene"], logics["app_logic"]
    layout_logic = slicer.vtkMRMLLayoutLogic()
    layout_logic.SetMRMLScene(scene)
    slice_logics = vtk.vtkCollection()
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        slice_logic = slicer.vtkMRMLSliceLogic()
        slice_logic.SetMRMLApplicationLogic(app_logic)
        slice_logic.SetMRMLScene(scene)
        slice_logic.SetSliceNode(scene.GetNthNodeByClass(index, "vtkMRMLSliceNode"))
        slice_logics.AddItem(slice_logic)
    app_logic.SetSliceLogics(slice_logics)
    logics.update(layout_logic=layout_logic, slice_logics=slice_logics)
    return logics


def remove_views(logics: dict) -> None:
    """Undo :func:`add_views` (slice logics re-create their nodes when a scene they watch is cleared)."""
    import vtk

    slice_logics = logics.pop("slice_logics", None)
    logics["app_logic"].SetSliceLogics(vtk.vtkCollection())
    for index in range(slice_logics.GetNumberOfItems() if slice_logics is not None else 0):
        slice_logics.GetItemAsObject(index).SetMRMLScene(None)
    layout_logic = logics.pop("layout_logic", None)
    if layout_logic is not None:
        layout_logic.SetMRMLScene(None)


def standalone_logics(scene=None) -> dict | None:
    """The logics :func:`setup_standalone` made for ``scene`` (default ``slicer.mrmlScene``), else None."""
    scene = scene if scene is not None else getattr(slicer, "mrmlScene", None)
    return _STANDALONE_LOGICS.get(id(scene)) if scene is not None else None


def application_logic():
    """Slicer's application logic: the application's, else the one :func:`setup_standalone` made (None if neither)."""
    if in_slicer_app():
        return slicer.app.applicationLogic()
    logics = standalone_logics()
    return logics["app_logic"] if logics else None


def release_standalone(scene) -> None:
    """Forget the logics made for ``scene`` (after the caller has dropped the scene for good)."""
    _STANDALONE_LOGICS.pop(id(scene), None)


def publish_logics(**logics) -> None:
    """Expose existing logics (e.g. a trame-slicer app's) as ``slicer.modules.<name>.logic()``.

    Only for use outside the Slicer application, where ``slicer.modules`` does not exist.
    """
    if in_slicer_app():
        return
    namespace = getattr(slicer, "modules", None)
    if namespace is None:
        namespace = types.SimpleNamespace()
        slicer.modules = namespace
    for name, logic in logics.items():
        setattr(namespace, name, types.SimpleNamespace(logic=(lambda value=logic: value)))
