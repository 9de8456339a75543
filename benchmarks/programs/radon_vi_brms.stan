// Radon, varying intercept: log_radon ~ 1 + floor + (1 | county).
// Written for the benchmark in the style of brms's generated code (brms 2.2x): centered
// population-level design Xc with a temporary Intercept, non-centered group effects
// r_1_1 = sd_1[1] * z_1[1], the likelihood as one normal_id_glm call, brms's default priors
// (flat on b, student_t(3, ...) on Intercept, sigma and sd). The prior location and scale
// that brms writes into the program as literals are data here (same values).
data {
  int<lower=1> N;  // total number of observations
  vector[N] Y;  // response variable
  int<lower=1> K;  // number of population-level effects
  matrix[N, K] X;  // population-level design matrix (first column: intercept)
  int<lower=1> Kc;  // number of population-level effects after centering
  // data for group-level effects of ID 1
  int<lower=1> N_1;  // number of grouping levels
  int<lower=1> M_1;  // number of coefficients per level
  array[N] int<lower=1> J_1;  // grouping indicator per observation
  // group-level predictor values
  vector[N] Z_1_1;
  // default prior hyperparameters (brms: student_t(3, median(Y), max(2.5, mad(Y))))
  real prior_Intercept_loc;
  real<lower=0> prior_scale;
  int prior_only;  // should the likelihood be ignored?
}
transformed data {
  matrix[N, Kc] Xc;  // centered version of X without an intercept
  vector[Kc] means_X;  // column means of X before centering
  for (i in 2:K) {
    means_X[i - 1] = mean(X[, i]);
    Xc[, i - 1] = X[, i] - means_X[i - 1];
  }
}
parameters {
  vector[Kc] b;  // regression coefficients
  real Intercept;  // temporary intercept for centered predictors
  real<lower=0> sigma;  // dispersion parameter
  vector<lower=0>[M_1] sd_1;  // group-level standard deviations
  array[M_1] vector[N_1] z_1;  // standardized group-level effects
}
transformed parameters {
  vector[N_1] r_1_1;  // actual group-level effects
  real lprior = 0;  // prior contributions to the log posterior
  r_1_1 = (sd_1[1] * (z_1[1]));
  lprior += student_t_lpdf(Intercept | 3, prior_Intercept_loc, prior_scale);
  lprior += student_t_lpdf(sigma | 3, 0, prior_scale)
    - 1 * student_t_lccdf(0 | 3, 0, prior_scale);
  lprior += student_t_lpdf(sd_1 | 3, 0, prior_scale)
    - 1 * student_t_lccdf(0 | 3, 0, prior_scale);
}
model {
  // likelihood including constants
  if (!prior_only) {
    // initialize linear predictor term
    vector[N] mu = rep_vector(0.0, N);
    mu += Intercept;
    for (n in 1:N) {
      // add more terms to the linear predictor
      mu[n] += r_1_1[J_1[n]] * Z_1_1[n];
    }
    target += normal_id_glm_lpdf(Y | Xc, mu, b, sigma);
  }
  // priors including constants
  target += lprior;
  target += std_normal_lpdf(z_1[1]);
}
generated quantities {
  // actual population-level intercept
  real b_Intercept = Intercept - dot_product(means_X, b);
}
