//! The names of the backplane channels. Each server subscribes to the fleet channel and its
//! own server channel always, to a connection's channel while it holds the connection, and to
//! a group's or a user's channel only while it holds a member of it (as ASP.NET Core's
//! `RedisChannels` lays them out).

/// Messages for every server: sends to all, all-except and lists of connections.
pub(crate) fn fleet(prefix: &str) -> String {
    format!("{prefix}:all")
}

/// Replies for one server: group acknowledgements and client results.
pub(crate) fn server(prefix: &str, server_id: &str) -> String {
    format!("{prefix}:server:{server_id}")
}

/// Messages for one connection, heard only by the server that holds it.
pub(crate) fn connection(prefix: &str, connection_id: &str) -> String {
    format!("{prefix}:connection:{connection_id}")
}

/// Messages for the members of one group.
pub(crate) fn group(prefix: &str, group: &str) -> String {
    format!("{prefix}:group:{group}")
}

/// Messages for the connections of one user.
pub(crate) fn user(prefix: &str, user: &str) -> String {
    format!("{prefix}:user:{user}")
}
