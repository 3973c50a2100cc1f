//! lvlab: a declarative reconciler that turns an `Lvlab.yml` manifest into
//! running libvirt lab VMs.
//!
//! Data flows one way: [`manifest`] (parse, validate, resolve into the desired
//! state) -> [`observe`] (what libvirt and the disk hold now) -> [`plan`] (a
//! graph of actions) -> [`apply`] (run the graph). Everything that touches a
//! hypervisor goes through its [`host::Host`] (connections, facts, storage).
//! [`cli`] is the thin layer that parses arguments and renders results; it
//! owns no behaviour of its own.

pub mod access;
pub mod actions;
pub mod apply;
pub mod cli;
pub mod cloudinit;
pub mod desired;
pub mod domain;
pub mod escape;
pub mod guest_agent;
pub mod host;
pub mod images;
pub mod kvm_probe;
pub mod libvirt;
pub mod manifest;
pub mod observe;
pub mod oneoff;
pub mod parallel;
pub mod plan;
pub mod provision;
pub mod reconcile;
pub mod rendering;
pub mod smoke;
pub mod snapshot;
pub mod storage;
