"""What the module registers when Slicer has started: the result layout (so that a scene saved with it
opens with its views) and the Sample Data entry (which shows what it loads)."""
import os

import slicer


def register_layout() -> None:
    """The module's layout in the layout node (also when a scene with it is opened before the module is)."""
    from UnetGANSlicerLib import layout

    layout.register_layout(slicer.mrmlScene)


def register_sample_data(module_dir: str) -> None:
    """The phantom cine in Sample Data, so a first-time user can try the workflow without own data."""
    import SampleData

    from UnetGANSlicerLib import sample_data

    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category=sample_data.SAMPLE_CATEGORY, sampleName=sample_data.SAMPLE_NAME,
        thumbnailFileName=os.path.join(module_dir, "Resources", "Icons", "UnetGANSlicer.png"),
        customDownloader=lambda source: sample_data.load_and_show(slicer.mrmlScene).volume)


def on_startup_completed(module_dir: str) -> None:
    register_layout()
    register_sample_data(module_dir)
