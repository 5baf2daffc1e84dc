pragma circom 2.0.0;

// Small interop fixture (no includes): out = x^3 + a*x + b with public b, private x and a.
// Public signals in circom order: out (output), then b (public input).
template MulChain() {
    signal input x;
    signal input a;
    signal input b;
    signal output out;
    signal x2;
    signal x3;
    signal ax;
    x2 <== x * x;
    x3 <== x2 * x;
    ax <== a * x;
    out <== x3 + ax + b;
}

component main {public [b]} = MulChain();
