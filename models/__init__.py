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

__all__ = ["MODELS", "PlaylistModel", "SongsTagsArtistsConfig", "SongsTagsArtistsModel",
           "PlylstTitleConfig", "PlylstTitleModel"]
