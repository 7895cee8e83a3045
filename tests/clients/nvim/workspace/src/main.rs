mod geometry;

use geometry::{midpoint, Point};

fn main() {
    let a = Point { x: 0.0, y: 0.0 };
    let b = Point { x: 4.0, y: 3.0 };
    println!("{}", a.distance(&b));
    let m = midpoint(&a, &b);
    println!("{} {}", m.x, m.y);
}
