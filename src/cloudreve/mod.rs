//! Typed async client for the Cloudreve v4 REST API.
