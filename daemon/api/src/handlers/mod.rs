//! One file per resource; each handler parses, calls the owner of the state, and answers.

pub(crate) mod attestation;
pub(crate) mod audit;
pub(crate) mod calls;
pub(crate) mod claim;
pub(crate) mod commands;
pub(crate) mod config;
pub(crate) mod display;
pub(crate) mod guests;
pub(crate) mod health;
pub(crate) mod identity;
pub(crate) mod logs;
pub(crate) mod metrics;
pub(crate) mod openapi;
pub(crate) mod pages;
pub(crate) mod pairing;
pub(crate) mod session;
pub(crate) mod status;
pub(crate) mod tokens;
pub(crate) mod update;
pub(crate) mod users;
