"""The music app: a song catalogue, liked songs and playlists."""

from __future__ import annotations

from typing import Any

from environments.apps.framework import ApiError, App, api, paginate


class MusicApp(App):
    """Search songs, like them and organise them into playlists."""

    name = "music"
    description = "Music: search the song catalogue, like songs and create or edit playlists."

    @api("Search the catalogue (ordered by id).", query="substring of the title", artist="exact artist name",
         genre="exact genre", page_index="page number from 0", page_limit="per page (1-20)")
    def search_songs(self, query: str = "", artist: str | None = None, genre: str | None = None,
                     page_index: int = 0, page_limit: int = 5) -> list[dict[str, Any]]:
        q = str(query).lower()
        rows = [s for _, s in sorted(self.tables["songs"].items()) if q in s["title"].lower()
                and (artist is None or s["artist"] == artist) and (genre is None or s["genre"] == genre)]
        return paginate(rows, page_index, page_limit)

    @api("Show one song.", song_id="the song's id")
    def show_song(self, song_id: int) -> dict[str, Any]:
        return self.find("songs", song_id, "song")

    @api("List your liked songs with your play count of each.", page_index="page number from 0",
         page_limit="per page (1-20)")
    def show_liked_songs(self, access_token: str, page_index: int = 0, page_limit: int = 5) -> list[dict[str, Any]]:
        rows = [{**self.tables["songs"][sid], "my_play_count": row["my_play_count"]}
                for sid, row in sorted(self.tables["liked"].items())]
        return paginate(rows, page_index, page_limit)

    @api("Like a song.", song_id="the song's id")
    def like_song(self, access_token: str, song_id: int) -> dict[str, Any]:
        self.find("songs", song_id, "song")
        if song_id in self.tables["liked"]:
            raise ApiError(f"song {song_id} is already liked")
        self.tables["liked"][song_id] = {"id": song_id, "my_play_count": 0}
        return {"message": "song liked"}

    @api("Unlike a song.", song_id="the song's id")
    def unlike_song(self, access_token: str, song_id: int) -> dict[str, Any]:
        self.delete("liked", song_id, "liked song")
        return {"message": "song unliked"}

    @api("List your playlists (without songs).", page_index="page number from 0", page_limit="per page (1-20)")
    def show_playlists(self, access_token: str, page_index: int = 0, page_limit: int = 5) -> list[dict[str, Any]]:
        rows = [{"id": p["id"], "title": p["title"], "num_songs": len(p["song_ids"])}
                for _, p in sorted(self.tables["playlists"].items())]
        return paginate(rows, page_index, page_limit)

    @api("Show a playlist with its song ids.", playlist_id="the playlist's id")
    def show_playlist(self, access_token: str, playlist_id: int) -> dict[str, Any]:
        return self.find("playlists", playlist_id, "playlist")

    @api("Create an empty playlist; titles must be unique.", title="the playlist title")
    def create_playlist(self, access_token: str, title: str) -> dict[str, Any]:
        if not str(title).strip():
            raise ApiError("title must not be empty")
        if any(p["title"] == title for p in self.tables["playlists"].values()):
            raise ApiError(f"a playlist titled {title!r} already exists")
        pid = self.next_id("playlists")
        self.tables["playlists"][pid] = {"id": pid, "title": title, "song_ids": []}
        return {"message": "playlist created", "playlist_id": pid}

    @api("Add a song to a playlist.", playlist_id="the playlist's id", song_id="the song's id")
    def add_song_to_playlist(self, access_token: str, playlist_id: int, song_id: int) -> dict[str, Any]:
        playlist = self.find("playlists", playlist_id, "playlist")
        self.find("songs", song_id, "song")
        if song_id in playlist["song_ids"]:
            raise ApiError(f"song {song_id} is already in playlist {playlist_id}")
        playlist["song_ids"].append(song_id)
        return {"message": "song added"}

    @api("Remove a song from a playlist.", playlist_id="the playlist's id", song_id="the song's id")
    def remove_song_from_playlist(self, access_token: str, playlist_id: int, song_id: int) -> dict[str, Any]:
        playlist = self.find("playlists", playlist_id, "playlist")
        if song_id not in playlist["song_ids"]:
            raise ApiError(f"song {song_id} is not in playlist {playlist_id}")
        playlist["song_ids"].remove(song_id)
        return {"message": "song removed"}

    @api("Delete a playlist.", playlist_id="the playlist's id")
    def delete_playlist(self, access_token: str, playlist_id: int) -> dict[str, Any]:
        self.delete("playlists", playlist_id, "playlist")
        return {"message": "playlist deleted"}
