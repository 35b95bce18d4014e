"""Networks: the LV-Unet segmenter and the CycleGAN generators and discriminators."""
