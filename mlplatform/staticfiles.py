"""Static files: WhiteNoise's compressed manifest storage, ignoring a manifest older than its sources.

A manifest written by an earlier collectstatic names hashed copies of the files as they were then;
after a JavaScript or CSS edit those copies are stale. Rather than serve them, pages fall back to the
unhashed names, which WhiteNoise serves from the source folders (WHITENOISE_USE_FINDERS), until the
next collectstatic.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from whitenoise.storage import CompressedManifestStaticFilesStorage


def _newest_source_mtime() -> float:
    newest = 0.0
    for entry in settings.STATICFILES_DIRS:
        folder = Path(entry[1] if isinstance(entry, tuple | list) else entry)
        for root, _dirs, files in os.walk(folder):
            for name in files:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
    return newest


class StaticStorage(CompressedManifestStaticFilesStorage):
    def read_manifest(self):
        if not getattr(settings, "STATIC_MANIFEST", True):
            return None
        try:
            manifest_mtime = os.stat(self.path(self.manifest_name)).st_mtime
        except (FileNotFoundError, NotImplementedError):
            return None
        if manifest_mtime < _newest_source_mtime():
            return None
        return super().read_manifest()

    def stored_name(self, name):
        # No current manifest: the unhashed name, served from the source folders.
        if not self.hashed_files:
            return name
        try:
            return super().stored_name(name)
        except ValueError:
            return name
