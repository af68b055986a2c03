//! The messages and services generated from `proto/nacos_grpc_service.proto` (no package, so
//! prost names the file `_`).
#![allow(missing_docs, non_camel_case_types, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/_.rs"));
