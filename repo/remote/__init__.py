"""The remote side of the `repo` command: which server a command talks to, the login kept for
it (config.toml, and its secret in the keyring or a 0600 file), the JSON API client, uploads,
and the commands that only a server can answer."""
