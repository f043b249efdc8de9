//! A bounded MessagePack reader over one message body.
