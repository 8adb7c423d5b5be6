//! One file per resource; each handler parses, calls the owner of the state, and answers.

pub mod attestation;
pub mod audit;
pub mod calls;
pub mod claim;
pub mod commands;
pub mod config;
pub mod display;
pub mod guests;
pub mod health;
pub mod identity;
pub mod logs;
pub mod openapi;
pub mod pages;
pub mod pairing;
pub mod session;
pub mod status;
pub mod tokens;
pub mod users;
