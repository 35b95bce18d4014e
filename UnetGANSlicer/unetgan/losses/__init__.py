"""Losses of the Unet-GAN adapter: SSIM with exponents, Unet features, least-squares GAN."""
