"""The two models of the original solution by registry name (the trainers' and checkpoints' `model_name`).

A model is rebuilt from its checkpoint as MODELS[name](MODELS[name].config_class(**model_config)).
"""
from models.base import PlaylistModel
from models.plylst_title import PlylstTitleConfig, PlylstTitleModel
from models.songs_tags_artists import SongsTagsArtistsConfig, SongsTagsArtistsModel

MODELS: dict[str, type[PlaylistModel]] = {
    SongsTagsArtistsModel.name: SongsTagsArtistsModel,
    PlylstTitleModel.name: PlylstTitleModel,
}
# The run folders of the two models under --output_dir (a run is named after its model, trainer/run_dir.py), in the
# order the ensemble takes them as members.
RUNS: tuple[str, ...] = tuple(MODELS)

__all__ = ["MODELS", "RUNS", "PlaylistModel", "SongsTagsArtistsConfig", "SongsTagsArtistsModel",
           "PlylstTitleConfig", "PlylstTitleModel"]
