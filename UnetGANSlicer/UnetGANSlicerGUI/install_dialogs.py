"""The dependency installation's dialogs: Slicer's own question and error boxes around
UnetGANSlicerLib.install (which decides what to install and how)."""
import slicer


def install_ui():
    """An UnetGANSlicerLib.install.InstallUI made of Slicer's dialogs and its documented pip_install."""
    from UnetGANSlicerLib.install import InstallUI

    def pip_install(arguments):
        with slicer.util.WaitCursor():
            slicer.util.pip_install(arguments)

    def error(message, details=""):
        slicer.util.errorDisplay(message, detailedText=details or None)

    return InstallUI(confirm=slicer.util.confirmOkCancelDisplay, error=error, pip_install=pip_install)


def pytorch_utils():
    """The PyTorch extension's module, None when the extension is not installed."""
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        return None
    return PyTorchUtils


def ensure_dependencies(logic, ask=True) -> bool:
    """Install what the module needs after asking; False (after a message or a 'no') when something is missing."""
    return logic.ensureDependencies(install_ui(), ask, pytorch_utils())


def slicer_too_old_text(logic) -> str:
    """The one message an unsupported Slicer shows in the panel ('' on a supported one)."""
    return logic.dependencyReport().slicer_problem or ""

