//! Builds the firmware image that the image tests boot (target/image-test, the same build the
//! tests would make themselves), so that `make test` can build it while the code is linted and
//! the tests are compiled: the image build mostly waits on apt downloads and disk, the compiler
//! on the CPU. The tests then find the image up to date (its inputs.sha256) and start booting.

use anyhow::Context;
use roomd_tests::firmware::{IMAGE_TEST_BUILD, image_test_workspace};
use roomd_tests::roomd_bin;

fn main() -> anyhow::Result<()> {
    let roomd = roomd_bin()?;
    let bin_dir = roomd.parent().context("roomd's folder")?;
    let (image, took) = image_test_workspace().build(bin_dir, &IMAGE_TEST_BUILD);
    match took {
        Some(took) => println!("{} built in {:.0} s", image.display(), took.as_secs_f64()),
        None => println!("{} is up to date", image.display()),
    }
    Ok(())
}
