//! End-to-end tests: the built binary on `testdata/` and `../shared/captures/`.

mod cases;
mod cli;
mod groundtruth;
mod live;
mod shared;
mod util;
