//! `sum`: the smallest backend, one pure entry point.

wit_bindgen::generate!({
    world: "rtc-example:sum/sum",
    path: ["../../src/rtc/vm/wit", "wit"],
    generate_all,
});

struct Sum;

impl Guest for Sum {
    /// Wrapping addition: overflow wraps around instead of trapping.
    fn sum(x: i32, y: i32) -> i32 {
        x.wrapping_add(y)
    }
}

export!(Sum);
