// Radon, correlated varying intercept and slope: log_radon ~ 1 + floor + (1 + floor | county).
// "Hand-written loop" style, as a tutorial writes it: one sampling statement per
// observation inside a for-loop; non-centered county effects with an LKJ prior on their
// correlation (Cholesky factor).
data {
  int<lower=1> N;                          // homes
  int<lower=1> J;                          // counties
  array[N] int<lower=1, upper=J> county;   // county of each home
  vector[N] x;                             // floor (0 = basement, 1 = first floor)
  vector[N] y;                             // log radon
}
parameters {
  real mu_a;                       // mean intercept (at floor = 0)
  real mu_b;                       // mean floor effect
  vector<lower=0>[2] tau;          // SDs of the county intercepts and slopes
  cholesky_factor_corr[2] L_Omega; // Cholesky factor of their correlation
  matrix[2, J] z;                  // standardized county effects
  real<lower=0> sigma_y;           // residual SD
}
transformed parameters {
  // county deviations: column 1 intercepts, column 2 floor slopes
  matrix[J, 2] ab = (diag_pre_multiply(tau, L_Omega) * z)';
}
model {
  mu_a ~ normal(0, 10);
  mu_b ~ normal(0, 10);
  tau ~ cauchy(0, 2.5);
  sigma_y ~ cauchy(0, 2.5);
  L_Omega ~ lkj_corr_cholesky(2);
  to_vector(z) ~ normal(0, 1);
  for (n in 1:N) {
    y[n] ~ normal(mu_a + ab[county[n], 1] + (mu_b + ab[county[n], 2]) * x[n], sigma_y);
  }
}
generated quantities {
  corr_matrix[2] Omega = multiply_lower_tri_self_transpose(L_Omega);
}
