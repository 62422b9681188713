//! `terrarium test`: a project's test suite inside an image made from the same plan as
//! production plus its development and test dependencies, on every CPython it supports.
//!
//! The image is built natively ([`terrarium_build`] with a `test` layer over the production
//! layers), loaded into the engine once per change, and run with the source mounted
//! read-only on /app, as the plan's non-root user, read-only root, a tmpfs /tmp, and no
//! network except an internal one to the services the tests need (PostgreSQL). The runner is
//! the project's ([`runner`]: pytest, unittest, Django's `manage.py test`, or a configured
//! command); pytest's JUnit XML or unittest's summary gives the counts. Everything started is
//! removed after the run, on errors and on Ctrl-C ([`Cleanup`]).

#![deny(missing_docs)]

mod cleanup;
mod deps;
mod error;
mod junit;
mod pythons;
mod runner;
mod services;
mod suite;
mod targets;

pub use cleanup::Cleanup;
pub use deps::{RUNNER, test_dependencies};
pub use error::TestError;
pub use junit::{Counts, counts};
pub use pythons::{PythonChoice, pythons};
pub use runner::{Runner, RunnerChoice, junit_of, runner};
pub use suite::{Outcome, SuiteOptions, TestImage, build_image, run_suite, write_junit};
pub use targets::{Target, TargetError, targets};

/// pytest's exit code when it collected no tests (unittest's since 3.12); `terrarium test`
/// exits with it too, whatever the runner.
pub const NO_TESTS: i32 = 5;
