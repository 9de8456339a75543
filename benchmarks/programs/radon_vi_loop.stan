// Radon, varying intercept: log_radon ~ 1 + floor + (1 | county).
// "Hand-written loop" style, as a tutorial writes it: one sampling statement per
// observation inside a for-loop, non-centered county intercepts, vague priors.
data {
  int<lower=1> N;                          // homes
  int<lower=1> J;                          // counties
  array[N] int<lower=1, upper=J> county;   // county of each home
  vector[N] x;                             // floor (0 = basement, 1 = first floor)
  vector[N] y;                             // log radon
}
parameters {
  real mu_a;                // mean county intercept (intercept at floor = 0)
  real beta;                // floor effect
  real<lower=0> sigma_a;    // SD of the county intercepts
  real<lower=0> sigma_y;    // residual SD
  vector[J] eta_a;          // standardized county deviations
}
transformed parameters {
  vector[J] a = sigma_a * eta_a;   // county deviations from mu_a
}
model {
  mu_a ~ normal(0, 10);
  beta ~ normal(0, 10);
  sigma_a ~ cauchy(0, 2.5);
  sigma_y ~ cauchy(0, 2.5);
  eta_a ~ normal(0, 1);
  for (n in 1:N) {
    y[n] ~ normal(mu_a + a[county[n]] + beta * x[n], sigma_y);
  }
}
