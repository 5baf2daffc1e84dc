pragma circom 2.0.0;

// A second issue-13 test circuit (not the merkle4 one): c = a^2 + b^2 + k with public k.
template SumSq() {
    signal input a;
    signal input b;
    signal input k;
    signal output c;
    signal a2;
    signal b2;
    a2 <== a * a;
    b2 <== b * b;
    c <== a2 + b2 + k;
}

component main {public [k]} = SumSq();
