//! stepbox's end-to-end tests, one test binary (so the host links once):
//! the real `stepbox` binary, real step components from `steps/` and test
//! guests from `tests/guests/`, real kubectl and helm against `stepbox
//! dev-cluster`. Each module is one area; `hostile` is the security suite
//! (`cargo test --workspace hostile_` runs exactly it, SECURITY.md lists its
//! cases).

mod cache;
mod cli;
mod components;
mod dev_cluster;
mod dev_cluster_controller;
mod faults;
mod fs;
mod gateway;
mod helm;
mod hostile;
mod http;
mod kube;
mod kustomize;
mod languages;
mod limits;
mod live;
mod needs;
mod observe;
mod oci;
mod pod_security;
mod policy;
mod prune;
mod secrets;
mod soak;
mod steps;
mod worker;
mod worker_steps;
