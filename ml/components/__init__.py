"""Parts shared by several pipelines: backbones, feature extraction, blocks, runtime."""
