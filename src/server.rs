//! HTTP front end (actix-web).
