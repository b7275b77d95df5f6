fn main() {
    println!("{} 2 + 3 = {}", greet_macro::greeting!(), native_add::add(2, 3));
}
