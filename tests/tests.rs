//! End-to-end tests: the built binary on `testdata/` and `../shared/captures/`.

mod cases;
mod ci;
mod cli;
mod groundtruth;
mod live;
mod shared;
mod tls;
mod tour;
mod util;
mod views;
